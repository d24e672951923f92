package bpf

// The BPF objects are generated with the clang that Debian 12 ships
// (clang-14); see the Makefile's generate target. The generated
// *_bpfel.go/.o files are committed so that go build and go test need no
// clang.

//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel -type hc_route_key -type hc_route -type hc_counter -type hc_iface -type hc_gate -type hc_reason -type hc_vmac_key -type hc_vip_key -type hc_vip -type hc_oif_list -type xdp_md ingress xdp_ingress.c
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel tcegress tc_egress.c
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel tcingress tc_ingress.c
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel devmap xdp_devmap.c
