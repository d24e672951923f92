package labtest

import (
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// PinnedRouteCount counts the entries of the routes map pinned under a
// daemon's pin path (maps/routes): what the dataplane forwards with, also
// while no daemon runs.
func PinnedRouteCount(t testing.TB, pinPath string) int {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(filepath.Join(pinPath, "maps", "routes"), nil)
	if err != nil {
		t.Fatalf("load pinned routes map: %v", err)
	}
	defer m.Close()
	n, err := CountKeys(m)
	if err != nil {
		t.Fatalf("count pinned routes: %v", err)
	}
	return n
}

// CountKeys counts the keys of a hash map.
func CountKeys(m *ebpf.Map) (int, error) {
	key := make([]byte, m.KeySize())
	next := make([]byte, m.KeySize())
	n := 0
	var prev any // nil: start from the first key
	for {
		if err := m.NextKey(prev, &next); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return n, nil
			}
			return n, err
		}
		n++
		copy(key, next)
		prev = key
	}
}

// DialTCPFrom opens a TCP connection from src (an address of ns, any port)
// to dst, inside ns.
func DialTCPFrom(t testing.TB, ns *netnstest.NS, src netip.Addr, dst netip.AddrPort) net.Conn {
	t.Helper()
	var c net.Conn
	ns.Do(t, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 3 * time.Second}
		var err error
		c, err = d.Dial("tcp", dst.String())
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}
