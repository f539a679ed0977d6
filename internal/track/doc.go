// Package track runs what VRRP instances track besides services and real
// servers, as keepalived does: scripts (vrrp_script), files holding a
// number (track_file) and process counts (vrrp_track_process). A Manager
// runs one tracker per configured object, off the VRRP goroutines, and
// reports each one's State; the daemon turns states into priorities with
// checks.TrackPriority. The clock, the script runner, the file reader and
// the process lister are injected, so the logic is tested with fakes.
package track
