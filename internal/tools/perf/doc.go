// Package perf measures Sori against the quality bars of DESIGN.md: memory
// per idle WebSocket connection, fan-out deliveries per second and
// publish→deliver latency, each against a baseline measured in the same run
// (a trivial TCP server, a raw-TCP fan-out harness with the same coalescing).
// It holds the harnesses and a minimal WebSocket client written for speed;
// the measurements themselves are tests behind the -perf flag (see
// docs/benchmarks.md). Nothing but its own tests imports it. Outside its
// tests it must never import server, session, hub or chat: the harnesses
// measure a server from outside, as a client does.
package perf
