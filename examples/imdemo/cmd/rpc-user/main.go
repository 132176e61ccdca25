// Command rpc-user is the user RPC service of the imdemo IM server.
package main

import (
	"net/http"

	"github.com/crossbuild-example/imdemo/pkg/common"
)

const (
	serviceName = "rpc-user"
	defaultAddr = ":10110"
)

func main() {
	common.Main(serviceName, defaultAddr, func(mux *http.ServeMux) {
		mux.Handle("GET /{$}", common.Greeting(serviceName, "user RPC service"))
	})
}
