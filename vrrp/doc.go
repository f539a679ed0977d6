// Package vrrp implements the Virtual Router Redundancy Protocol: version 3
// (RFC 5798) and version 2 (RFC 3768).
//
// The package has three layers, each usable alone:
//
//   - the codec (Packet, Parse, Marshal) turns wire bytes into packets and back;
//   - the Machine is the RFC state machine. It is pure: it does no I/O, starts
//     no goroutines and reads no clock. Every input carries the current time,
//     and every output is an Action for the caller to carry out;
//   - the Instance runs one Machine against a real or fake clock, a packet
//     sender and an address mover.
package vrrp
