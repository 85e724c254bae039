// Command ticker is a runnable example backend: it pushes simulated prices for
// a few symbols into Sori's feed:<SYMBOL> channels through the server API, the
// way a trading engine would. Open http://127.0.0.1:7700/ticker.html to watch.
//
//	go run ./examples/ticker --url http://127.0.0.1:7700 --key "$(jq -r .api_key sori-data/secrets.json)"
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:7700", "Sori server URL")
	key := flag.String("key", os.Getenv("SORI_API_KEY"), "server API key (default $SORI_API_KEY, or read from --data)")
	data := flag.String("data", "sori-data", "the server's data dir, to read the API key from when --key is empty")
	symbols := flag.String("symbols", "BTC-USD,ETH-USD,SOL-USD,AAPL,MSFT,NVDA", "comma-separated symbols")
	rate := flag.Float64("rate", 10, "ticks per second per symbol")
	count := flag.Int("count", 0, "stop after this many broadcasts (0 = until interrupted)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *key == "" {
		b, err := os.ReadFile(*data + "/secrets.json")
		if err != nil {
			log.Error("no API key: pass --key or --data", "err", err)
			os.Exit(2)
		}
		var s struct {
			APIKey string `json:"api_key"`
		}
		if err := json.Unmarshal(b, &s); err != nil {
			log.Error("read secrets", "err", err)
			os.Exit(2)
		}
		*key = s.APIKey
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *url, *key, strings.Split(*symbols, ","), *rate, *count, log); err != nil {
		log.Error("ticker stopped", "err", err)
		os.Exit(1)
	}
}

// run publishes a random walk per symbol, one /api/publish call per tick.
func run(ctx context.Context, url, key string, symbols []string, rate float64, count int, log *slog.Logger) error {
	prices := map[string]float64{}
	for i, s := range symbols {
		prices[s] = 50 + 1000*float64(i+1)*rand.Float64()
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	client := &http.Client{Timeout: 5 * time.Second}
	for n := 0; count == 0 || n < count; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, s := range symbols {
			p := prices[s] * math.Exp(rand.NormFloat64()*0.002)
			prices[s] = p
			body, _ := json.Marshal(map[string]any{"channel": "feed:" + s, "data": map[string]any{"symbol": s, "price": math.Round(p*10000) / 10000, "ts": time.Now().UnixMilli()}})
			if err := post(ctx, client, url+"/api/publish", key, body); err != nil {
				return err
			}
		}
		if n%100 == 0 {
			log.Info("published", "ticks", n+1)
		}
	}
	return nil
}

func post(ctx context.Context, c *http.Client, url, key string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "apikey "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var e bytes.Buffer
		_, _ = e.ReadFrom(res.Body)
		return fmt.Errorf("publish: %s: %s", res.Status, strings.TrimSpace(e.String()))
	}
	return nil
}
