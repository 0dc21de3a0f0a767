// Command hello-service is the sample service of paved's demo and deploy tests: it answers
// on $PORT with a greeting and its version, reports health on /healthz, and shuts down
// gracefully on SIGTERM (requests in flight finish).
//
// Its behaviour is set by its build-time version, so that one source tree gives good and
// bad releases: a version's dash-separated parts may include errN (N% of requests answer
// 500), slowD (every request waits D more, a Go duration) and crash (exit 1 at once).
// For example 1.1.0-err20 fails one request in five; 1.2.0-slow50ms adds 50 ms.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// behaviour is what a version asks of the service.
type behaviour struct {
	errorRate float64       // 0..1
	latency   time.Duration // added to every request
	crash     bool
}

func parseVersion(v string) behaviour {
	var b behaviour
	for _, part := range strings.Split(v, "-") {
		switch {
		case strings.HasPrefix(part, "err"):
			if n, err := strconv.Atoi(part[3:]); err == nil && n >= 0 && n <= 100 {
				b.errorRate = float64(n) / 100
			}
		case strings.HasPrefix(part, "slow"):
			if d, err := time.ParseDuration(part[4:]); err == nil && d > 0 {
				b.latency = d
			}
		case part == "crash":
			b.crash = true
		}
	}
	return b
}

func greeting(name string) string {
	if name == "" {
		name = "world"
	}
	return fmt.Sprintf("hello, %s (version %s)", name, version)
}

func handler(b behaviour) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if b.latency > 0 {
			time.Sleep(b.latency)
		}
		if b.errorRate > 0 && rand.Float64() < b.errorRate {
			http.Error(w, "hello-service "+version+": injected failure", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, greeting(r.URL.Query().Get("name")))
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, version)
	})
	return mux
}

func main() {
	b := parseVersion(version)
	if b.crash {
		log.Fatalf("hello-service %s: crashing on purpose", version)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{Addr: ":" + port, Handler: handler(b), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	log.Printf("hello-service %s listening on :%s", version, port)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
