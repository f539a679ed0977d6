package labplan

import "time"

// LoadResult is a load step's stdout, in JSON.
type LoadResult struct {
	Requests int           `json:"requests"` // answered
	Failed   int           `json:"failed"`
	Took     time.Duration `json:"took"`
	Rate     float64       `json:"rate"` // answered requests per second
	// Responders counts the answers per real server.
	Responders map[string]int `json:"responders"`
}

// Load runs n clients in the client's namespace for d, each making HTTP
// requests to the VIP one after the other, each on a new connection (1 s
// timeout), and reports the answered requests a second.
func Load(n int, d time.Duration) Step {
	return Step{Kind: KindLoad, Count: n, Duration: Duration(d)}
}
