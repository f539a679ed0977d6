// Package kaimport converts a keepalived.conf (with its includes) into a
// director.yaml, and reports every keyword it could not carry over.
//
// The conversion has three stages: lexing with includes (lex.go, include.go),
// parsing into a tree of keyword nodes (parse.go), and converting that tree
// (walk.go, vrrp.go, syncgroup.go, track.go, lvs.go, groups.go, checks.go,
// convert.go) into output.go's types, whose health checks are config's own
// Check. The bytes to be written are then loaded with config.Parse, exactly
// as director will load them: any refusal is reported at the keepalived
// line the setting came from, and nothing is written. A conversion that
// succeeds therefore always loads.
//
// Defaults that differ between the two are written out, so that the result
// behaves like keepalived did: VRRP version 2, forwarding nat, scheduler
// wlc, a UDP service when no protocol is given, keepalived's check timings
// (rise and fall 1, retries that include refused connections), on_failure
// remove without inhibit_on_failure. Every checker and every url of a real
// server becomes a check of its own.
package kaimport
