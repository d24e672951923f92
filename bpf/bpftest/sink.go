package bpftest

import (
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Sink is the receiver-side helper program (xdp_sink.c) attached to one
// interface: it counts routed IPv6 multicast per group, then drops (a sink
// standing for the wire, for benchmarks) or passes the frames to the stack.
// Attaching it to a veth end is also what lets that end receive
// XDP-redirected frames. Used by tests, the lab and benchmarks.
type Sink struct {
	objs sinkObjects
	link link.Link
}

// AttachSink loads a sink and attaches it to ifindex in the calling
// thread's network namespace (driver mode).
func AttachSink(ifindex int, drop bool) (_ *Sink, err error) {
	spec, err := loadSink()
	if err != nil {
		return nil, fmt.Errorf("load sink spec: %w", err)
	}
	var d uint8
	if drop {
		d = 1
	}
	if err := spec.Variables["sink_drop"].Set(d); err != nil {
		return nil, fmt.Errorf("set sink mode: %w", err)
	}
	s := &Sink{}
	if err := spec.LoadAndAssign(&s.objs, nil); err != nil {
		return nil, fmt.Errorf("load sink: %+v", err)
	}
	s.link, err = link.AttachXDP(link.XDPOptions{Program: s.objs.HcSink, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		s.objs.Close()
		return nil, fmt.Errorf("attach sink to %d: %w", ifindex, err)
	}
	return s, nil
}

// Counts returns the frames seen per group, summed over CPUs.
func (s *Sink) Counts() (map[netip.Addr]uint64, error) {
	out := map[netip.Addr]uint64{}
	var k sinkSinkKey
	var per []uint64
	it := s.objs.SinkCounts.Iterate()
	for it.Next(&k, &per) {
		var sum uint64
		for _, v := range per {
			sum += v
		}
		out[netip.AddrFrom16(k.Grp)] = sum
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read sink counts: %w", err)
	}
	return out, nil
}

// Total returns the frames seen over all groups.
func (s *Sink) Total() (uint64, error) {
	m, err := s.Counts()
	if err != nil {
		return 0, err
	}
	var t uint64
	for _, v := range m {
		t += v
	}
	return t, nil
}

// Reset zeroes the counters.
func (s *Sink) Reset() error {
	var k sinkSinkKey
	var keys []sinkSinkKey
	var per []uint64
	it := s.objs.SinkCounts.Iterate()
	for it.Next(&k, &per) {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if err := s.objs.SinkCounts.Delete(k); err != nil && err != ebpf.ErrKeyNotExist {
			return fmt.Errorf("reset sink: %w", err)
		}
	}
	return nil
}

// Close detaches the sink.
func (s *Sink) Close() error {
	err := s.link.Close()
	s.objs.Close()
	return err
}
