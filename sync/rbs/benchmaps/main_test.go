package benchmaps_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/hotcast/hotcast/internal/hugeheap"
)

// heapSetup is what the process did to its heap at start: as hotcastd
// does (daemon/heap.go), the same call with the same options, so that run
// 1 of the batch benchmark is a standby's first batch after start
// (HOTCAST_NO_THP=1 turns it off here too).
var heapSetup hugeheap.Result

func TestMain(m *testing.M) {
	heapSetup = hugeheap.Setup(hugeheap.Options{})
	if os.Getenv("HC_BENCH") == "1" && os.Getenv("HC_BENCH_SENDER") == "" {
		fmt.Println("heap:", heapSetup)
	}
	os.Exit(m.Run())
}
