package vulndb

import "errors"

// ErrCorrupt is matched (errors.Is) by every error that rejects data read
// from a vulnerability database: malformed JSON, an entry whose id does not
// match its file name, a version that is not semver, an index that names no
// usable entry, or a file larger than its size bound. Errors reaching a
// source (connection refused, HTTP status) do not match it.
var ErrCorrupt = errors.New("invalid vulnerability data")
