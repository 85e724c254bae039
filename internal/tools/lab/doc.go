// Package lab is `sori lab`: it runs one workload (a publisher, N readers, M
// messages of K bytes) over short polling, long polling, SSE + POST,
// WebSocket and WebSocket with permessage-deflate, counting bytes at the
// socket, HTTP requests, delivery latency and server CPU per delivered
// message; and `sori lab rtc` (rtc.go), calls of N pion peers as a mesh and
// through the SFU, counting each participant's bytes and the server's CPU.
// It must never import server (it starts one as a child process).
package lab
