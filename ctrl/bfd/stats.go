package bfd

import (
	"errors"
	"fmt"
	"time"
)

// DropReason classifies a discarded BFD Control packet (RFC 5880 §6.8.6,
// RFC 5881 §5).
type DropReason uint8

// Drop reasons.
const (
	DropHopLimit       DropReason = iota // hop limit is not 255 (RFC 5881 §5)
	DropTruncated                        // shorter than 24 bytes or than its Length
	DropBadVersion                       // version is not 1
	DropBadLength                        // Length under 24, or under 26 with the A bit
	DropBadAuthLen                       // Auth Len inconsistent with Length
	DropZeroDetectMult                   // Detect Mult is 0
	DropMultipoint                       // M bit set
	DropZeroMyDiscr                      // My Discriminator is 0
	DropZeroYourDiscr                    // Your Discriminator 0 in state Init or Up
	DropUnknownDiscr                     // Your Discriminator selects no session
	DropNoSession                        // Your Discriminator 0 and no session for the source and interface
	DropPeerMismatch                     // the session's peer or interface differs from the packet's
	DropAuth                             // A bit set: no authentication is in use
	DropAdminDown                        // the local session is AdminDown (RFC 5880 §6.8.6)
	DropNotRunning                       // the session is not started or closed
	NumDropReasons
)

func (d DropReason) String() string {
	switch d {
	case DropHopLimit:
		return "HopLimit"
	case DropTruncated:
		return "Truncated"
	case DropBadVersion:
		return "BadVersion"
	case DropBadLength:
		return "BadLength"
	case DropBadAuthLen:
		return "BadAuthLen"
	case DropZeroDetectMult:
		return "ZeroDetectMult"
	case DropMultipoint:
		return "Multipoint"
	case DropZeroMyDiscr:
		return "ZeroMyDiscr"
	case DropZeroYourDiscr:
		return "ZeroYourDiscr"
	case DropUnknownDiscr:
		return "UnknownDiscr"
	case DropNoSession:
		return "NoSession"
	case DropPeerMismatch:
		return "PeerMismatch"
	case DropAuth:
		return "Auth"
	case DropAdminDown:
		return "AdminDown"
	case DropNotRunning:
		return "NotRunning"
	}
	return fmt.Sprintf("DropReason(%d)", uint8(d))
}

// DropReasonOf maps a Parse error to its drop reason.
func DropReasonOf(err error) DropReason {
	switch {
	case errors.Is(err, ErrTruncated):
		return DropTruncated
	case errors.Is(err, ErrBadVersion):
		return DropBadVersion
	case errors.Is(err, ErrBadLength):
		return DropBadLength
	case errors.Is(err, ErrBadAuthLen):
		return DropBadAuthLen
	case errors.Is(err, ErrZeroDetectMult):
		return DropZeroDetectMult
	case errors.Is(err, ErrMultipoint):
		return DropMultipoint
	case errors.Is(err, ErrZeroMyDiscr):
		return DropZeroMyDiscr
	case errors.Is(err, ErrZeroYourDiscr):
		return DropZeroYourDiscr
	}
	return DropTruncated
}

// Stats are a session's counters.
type Stats struct {
	// Received counts every packet handed to HandlePacket, dropped ones
	// included.
	Received uint64
	// Sent counts the packets handed to the Sender without an error,
	// periodic and Final ones.
	Sent       uint64
	SendErrors uint64
	// PollsReceived counts received packets with the P bit, each answered
	// by a Final; FinalsSent the Finals sent.
	PollsReceived uint64
	FinalsSent    uint64
	// PollSequences counts the Poll Sequences this session started,
	// PollsCompleted those a Final ended.
	PollSequences  uint64
	PollsCompleted uint64
	// UpCount counts transitions to Up, DownCount transitions from Up to
	// Down or AdminDown.
	UpCount   uint64
	DownCount uint64
	// DetectExpired counts expiries of the Detection Time in Init or Up;
	// LastDetectLateness is how long after the deadline (last arrival plus
	// the Detection Time) the last of them was declared.
	DetectExpired      uint64
	LastDetectLateness time.Duration
	// DetectDeferred counts expiries put off because the receive socket
	// still held packets that had arrived before the deadline.
	DetectDeferred uint64
	// Drops counts dropped packets by DropReason.
	Drops [NumDropReasons]uint64
}

// Dropped returns the total number of dropped packets.
func (s *Stats) Dropped() uint64 {
	var n uint64
	for _, d := range s.Drops {
		n += d
	}
	return n
}
