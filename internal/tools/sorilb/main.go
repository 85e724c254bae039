// Command sorilb is a non-sticky load balancer for trying Sori's cluster mode
// on one machine (scripts/cluster-demo.sh, docs/operations.md): each request
// goes to a random node. It must never import server, session, hub or chat.
//
//	go run ./internal/tools/sorilb -listen 127.0.0.1:7700 127.0.0.1:7701 127.0.0.1:7702 127.0.0.1:7703
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/sori-dev/sori/internal/tools/lb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7700", "address to listen on")
	check := flag.String("check", "/readyz", "health check path: a backend that does not answer 200 within a second gets no new requests (empty: no checks)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: sorilb [-listen ADDR] BACKEND...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	p, err := lb.New(flag.Args(), log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if *check != "" {
		go p.Check(context.Background(), *check, 500*time.Millisecond, time.Second)
	}
	log.Info("sorilb listening", "addr", *listen, "backends", flag.Args())
	srv := &http.Server{Addr: *listen, Handler: p, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
