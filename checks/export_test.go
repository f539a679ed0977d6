package checks

// MaxDiscounted is maxDiscounted, for the external tests.
const MaxDiscounted = maxDiscounted
