// Package bpftest holds the BPF programs that only tests, the lab and the
// benchmarks load: the receiver-side sink (xdp_sink.c) and the egress test
// shim (xdp_testshim.c). hotcastd never imports it, so neither program is
// in the production binary.
package bpftest

// Generated like the dataplane's objects (see ../gen.go and the Makefile's
// generate target); the *_bpfel.go/.o files are committed.

//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel testshim xdp_testshim.c
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel -type sink_key sink xdp_sink.c
