// Command push is the offline push service of the imdemo IM server.
package main

import (
	"net/http"

	"github.com/crossbuild-example/imdemo/pkg/common"
)

const (
	serviceName = "push"
	defaultAddr = ":10170"
)

func main() {
	common.Main(serviceName, defaultAddr, func(mux *http.ServeMux) {
		mux.Handle("GET /{$}", common.Greeting(serviceName, "offline push service"))
	})
}
