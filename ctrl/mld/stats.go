package mld

import "fmt"

// DropReason says why a received message or record was dropped.
type DropReason int

// Drop reasons. Message-level reasons drop the whole message; record-level
// ones (marked) drop one multicast address record or MLDv1 message.
const (
	DropTruncated          DropReason = iota // shorter than its fields say
	DropBadLength                            // query of 25..27 octets (RFC 3810 §8.1)
	DropBadChecksum                          // ICMPv6 checksum
	DropUnknownType                          // not an MLD message
	DropBadRecord                            // record runs past the message
	DropHopLimit                             // hop limit not 1 (RFC 3810 §5.1.14, §6.2)
	DropNoRouterAlert                        // no Hop-by-Hop Router Alert while required
	DropSourceUnspecified                    // source :: (RFC 3810 §5.2.13)
	DropSourceNotLinkLocal                   // source not link-local (RFC 3810 §5.1.14, §5.2.13)
	DropVersionMismatch                      // MLDv2 report on an MLDv1 interface (RFC 3810 §8.3.1)
	DropBadGroup                             // record: group not an IPv6 multicast address
	DropGroupScope                           // record: ff02::1 or scope < 2 (RFC 3810 §6)
	DropBadSource                            // record: a source is multicast, ::, or loopback
	DropUnknownRecord                        // record: unknown record type (RFC 3810 §5.2.12)
	DropSSMExclude                           // record: EXCLUDE or MLDv1 for an SSM group (RFC 4604 §2.2.1)
	DropMaxGroups                            // record: would create a group beyond MaxGroups
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	"truncated", "bad-length", "bad-checksum", "unknown-type", "bad-record",
	"hop-limit", "no-router-alert", "source-unspecified", "source-not-link-local",
	"version-mismatch", "bad-group", "group-scope", "bad-source", "unknown-record",
	"ssm-exclude", "max-groups",
}

func (r DropReason) String() string {
	if r >= 0 && r < numDropReasons {
		return dropReasonNames[r]
	}
	return fmt.Sprintf("drop-%d", int(r))
}

// Stats are the counters of one interface.
type Stats struct {
	RxQueriesV1, RxQueriesV2 uint64
	RxReportsV1, RxDonesV1   uint64
	RxReportsV2, RxRecords   uint64

	TxGeneralQueries     uint64
	TxGroupQueries       uint64 // multicast-address-specific
	TxGroupSourceQueries uint64 // multicast-address-and-source-specific
	TxErrors             uint64

	Drops map[DropReason]uint64 // only non-zero reasons
}

type counters struct {
	Stats
	Drops [numDropReasons]uint64
}

func (c *counters) snapshot() Stats {
	s := c.Stats
	s.Drops = make(map[DropReason]uint64)
	for r, n := range c.Drops {
		if n != 0 {
			s.Drops[DropReason(r)] = n
		}
	}
	return s
}
