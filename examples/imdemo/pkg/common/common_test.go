package common

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestHealthz(t *testing.T) {
	rec := httptest.NewRecorder()
	NewMux(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "ok" {
		t.Fatalf("got %d %q, want 200 \"ok\"", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	NewMux(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/healthz", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: got %d, want 405", rec.Code)
	}
}

func TestParseFlagsAddr(t *testing.T) {
	env := func(m map[string]string) func(string) string {
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, ":10002"},
		{nil, map[string]string{"ADDR": ":9000"}, ":9000"},
		{[]string{"--addr", "127.0.0.1:1"}, map[string]string{"ADDR": ":9000"}, "127.0.0.1:1"},
	}
	for _, tt := range tests {
		opts, err := ParseFlags("api", ":10002", tt.args, env(tt.env), io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if opts.Addr != tt.want {
			t.Errorf("%v %v: addr %q, want %q", tt.args, tt.env, opts.Addr, tt.want)
		}
	}
	opts, err := ParseFlags("api", ":10002", []string{"--version"}, env(nil), io.Discard)
	if err != nil || !opts.ShowVersion {
		t.Fatalf("--version: %+v %v", opts, err)
	}
}

func TestServeGracefulShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip("cannot listen:", err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "test", addr, NewMux(nil)) }()

	var resp *http.Response
	for i := 0; i < 50; i++ {
		resp, err = http.Get("http://" + addr + "/healthz")
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not shut down")
	}
}
