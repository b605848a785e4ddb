// A small HTTP server for goreclaim's own tests of programs that serve: each request to
// /alloc?mb=N allocates and touches N MiB, keeps it for the request, and answers its length.
package main

import (
	_ "expvar" // /debug/vars: the runtime's memstats, for --metrics-url
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	http.HandleFunc("/alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, err := strconv.Atoi(r.URL.Query().Get("mb"))
		if err != nil || mb < 0 || mb > 1024 {
			http.Error(w, "mb: an integer from 0 to 1024", http.StatusBadRequest)
			return
		}
		b := make([]byte, mb<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Fprintln(w, len(b))
	})
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	go func() {
		<-stop
		log.Print("SIGTERM: exiting")
		os.Exit(0)
	}()
	log.Printf("listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
