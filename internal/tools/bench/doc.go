// Package bench is `sori bench`: a bounded load generator for any Sori
// server (WebSocket clients over several loopback source addresses, the
// server API as publisher) with a log-bucketed latency histogram, a live
// progress line, a JSON report and an SVG chart. It must never import server.
package bench
