// Command api is the REST API for clients of the imdemo IM server.
package main

import (
	"net/http"

	"github.com/crossbuild-example/imdemo/pkg/common"
)

const (
	serviceName = "api"
	defaultAddr = ":10002"
)

func main() {
	common.Main(serviceName, defaultAddr, func(mux *http.ServeMux) {
		mux.Handle("GET /{$}", common.Greeting(serviceName, "REST API for clients"))
	})
}
