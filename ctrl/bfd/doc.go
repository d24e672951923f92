// Package bfd implements Bidirectional Forwarding Detection for single-hop
// IPv6 (RFC 5880, RFC 5881): the Control packet codec, the asynchronous
// mode state machine of RFC 5880 §6.2 and §6.8 (Down/Init/Up/AdminDown,
// discriminators, detect multiplier, the negotiated transmit interval and
// Detection Time, Poll/Final for timer changes, the 1 s slow transmit rate
// until Up, 0-25% jitter), a Demux that selects the session of a received
// packet by Your Discriminator or, while that is 0, by interface and source
// address, and on Linux the UDP sockets (port 3784, hop limit 255, source
// ports 49152-65535).
//
// What it does not do, on purpose:
//   - Echo mode: Required Min Echo RX Interval is always sent as 0, and a
//     peer's echo parameters are ignored.
//   - Demand mode locally: the D bit is never sent. A peer's Demand mode is
//     honoured (RFC 5880 §6.8.7: periodic transmission stops while both
//     sessions are Up and no Poll Sequence runs).
//   - Authentication: no Auth Type is implemented. The codec parses the
//     authentication section for its length only; a Session drops every
//     packet with the A bit set (DropAuth), as RFC 5880 §6.8.6 requires
//     when no authentication is in use.
//   - The C bit is sent as 0: the sessions run in the control plane.
//
// Sessions take a clock.Clock, so that tests run them on a fake clock, and
// a Sender for their packets. Both the Sender and the Observer are called
// with the session's lock held; they must not call back into the session.
package bfd
