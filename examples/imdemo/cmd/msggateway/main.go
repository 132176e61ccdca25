// Command msggateway is the long-connection message gateway of the imdemo IM server.
package main

import (
	"net/http"

	"github.com/crossbuild-example/imdemo/pkg/common"
)

const (
	serviceName = "msggateway"
	defaultAddr = ":10001"
)

func main() {
	common.Main(serviceName, defaultAddr, func(mux *http.ServeMux) {
		mux.Handle("GET /{$}", common.Greeting(serviceName, "long-connection message gateway"))
	})
}
