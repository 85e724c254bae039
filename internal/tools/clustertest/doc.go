// Package clustertest runs Sori as a real cluster and checks it the way a
// user meets it: three `sori serve` child processes on one PostgreSQL
// database (SORI_TEST_POSTGRES) and one NATS server embedded in the test
// process, behind the non-sticky balancer of internal/tools/lb, driven by
// real WebSocket and HTTP-fallback clients. Its tests kill nodes with
// SIGKILL under load and judge what the clients saw with a Jepsen-style
// checker (Check): every acknowledged publication delivered exactly once to
// every reader, readers agreeing on offset→payload, offsets contiguous within
// an epoch. The short run is part of `make test`; the long one runs with
// SORI_TEST_SLOW=1 (docs/operations.md, "Cluster mode").
//
// It must never import server, session, hub or chat: the nodes are child
// processes and everything is seen from outside, as a client sees it.
package clustertest
