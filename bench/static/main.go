// Command static is the floor of modgate's cache-hit benchmark (see
// ../README.md): a plain net/http file server over one directory, with no
// logging, metrics or protocol parsing, so that modgate's throughput on the
// same files can be reported as a ratio against it.
//
// Usage:
//
//	static -listen 127.0.0.1:PORT -dir DIR
//
// It refuses any listen address that is not a loopback address, prints
// "listening on ADDR" once it accepts connections, and serves until killed.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to listen on, host:port")
	dir := flag.String("dir", "", "directory to serve (required)")
	flag.Parse()
	if err := run(*listen, *dir); err != nil {
		log.SetFlags(0)
		log.Fatalf("static: %v", err)
	}
}

func run(listen, dir string) error {
	if dir == "" {
		return errors.New("-dir is required")
	}
	if fi, err := os.Stat(dir); err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("-listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen %q: not a loopback IP address", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	// The same header timeout modgate uses by default, so that the two
	// servers differ only in what they do per request.
	srv := &http.Server{
		Handler:           http.FileServer(http.Dir(dir)),
		ReadHeaderTimeout: 10 * time.Second,
	}
	return srv.Serve(ln)
}
