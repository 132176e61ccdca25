// Package common contains the plumbing shared by every imdemo service:
// flag parsing (--addr, --version), an HTTP server exposing GET /healthz and
// graceful shutdown on SIGINT/SIGTERM.
package common

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/crossbuild-example/imdemo/pkg/version"
)

// Options are the parsed command-line settings of a service.
type Options struct {
	Addr        string
	ShowVersion bool
}

// ParseFlags parses args (without the program name) for the service name.
// The listen address defaults to $ADDR if set, else defaultAddr; --addr
// overrides both.
func ParseFlags(name, defaultAddr string, args []string, getenv func(string) string, errOut io.Writer) (Options, error) {
	var opts Options
	addr := defaultAddr
	if v := getenv("ADDR"); v != "" {
		addr = v
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&opts.Addr, "addr", addr, "listen address (env ADDR)")
	fs.BoolVar(&opts.ShowVersion, "version", false, "print version information and exit")
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() > 0 {
		return opts, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return opts, nil
}

// HealthHandler answers GET/HEAD /healthz with 200 "ok".
func HealthHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok")
}

// NewMux returns a mux with /healthz registered; register, if non-nil, may
// add service-specific routes.
func NewMux(register func(*http.ServeMux)) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", HealthHandler)
	if register != nil {
		register(mux)
	}
	return mux
}

// Serve runs an HTTP server on addr until ctx is cancelled, then shuts it
// down gracefully.
func Serve(ctx context.Context, name, addr string, handler http.Handler) error {
	srv := &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
	}
	errc := make(chan error, 1)
	go func() {
		log.Printf("%s %s listening on %s", name, version.Version, addr)
		errc <- srv.ListenAndServe()
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Main is the whole life cycle of a service: parse flags, handle --version,
// serve until SIGINT/SIGTERM. It calls os.Exit on failure.
func Main(name, defaultAddr string, register func(*http.ServeMux)) {
	log.SetPrefix("[" + name + "] ")
	opts, err := ParseFlags(name, defaultAddr, os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if opts.ShowVersion {
		fmt.Print(version.String(name))
		os.Exit(0)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Serve(ctx, name, opts.Addr, NewMux(register)); err != nil {
		log.Printf("error: %v", err)
		stop()
		os.Exit(1)
	}
	log.Printf("stopped")
}

// Greeting is a tiny helper each service uses for its own info endpoint.
func Greeting(name, what string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s: %s (%s)\n", name, what, version.Version)
	}
}
