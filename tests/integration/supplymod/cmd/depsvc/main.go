// depsvc is the supply-chain tests' service: a main package with real module dependencies,
// so its SBOM has something to list (the imdemo example depends on nothing but the standard library).
package main

import (
	"fmt"
	"os"

	"github.com/google/uuid"
	"github.com/pkg/errors"
)

func main() {
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte("crossbuild"))
	if len(os.Args) > 1 && os.Args[1] == "fail" {
		fmt.Println(errors.Wrap(errors.New("asked to fail"), id.String()))
		os.Exit(1)
	}
	fmt.Println("depsvc", id.String())
}
