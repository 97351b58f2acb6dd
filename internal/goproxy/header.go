package goproxy

import (
	"net/http"

	"github.com/modgate/modgate/internal/mirror"
)

// A fileHeader holds the Content-Type, Cache-Control and X-Modgate-Cache
// values of versioned files, one []string each, made once and put in every
// response's header map as they are. Header.Set would allocate a new
// []string per header per request, on the path of every cache hit. Sharing
// is safe because nothing writes into a header's slice: net/http only reads
// it, and Set and Add replace it or append to it, and with its capacity
// equal to its length an append copies.
type fileHeader struct {
	contentType  map[Kind][]string
	cacheControl []string
	result       map[mirror.Result][]string
}

func newFileHeader() fileHeader {
	fh := fileHeader{
		contentType:  make(map[Kind][]string),
		cacheControl: []string{immutableCacheControl},
		result:       make(map[mirror.Result][]string),
	}
	for _, k := range []Kind{KindInfo, KindMod, KindZip} {
		fh.contentType[k] = []string{contentType(k)}
	}
	for _, r := range []mirror.Result{mirror.Hit, mirror.Miss, mirror.Stale} {
		fh.result[r] = []string{string(r)}
	}
	return fh
}

// set sets the headers of a k file served with result in hdr.
func (fh fileHeader) set(hdr http.Header, k Kind, result mirror.Result) {
	if v, ok := fh.contentType[k]; ok {
		hdr["Content-Type"] = v[:1:1]
	} else {
		hdr.Set("Content-Type", contentType(k))
	}
	hdr["Cache-Control"] = fh.cacheControl[:1:1]
	if v, ok := fh.result[result]; ok {
		hdr["X-Modgate-Cache"] = v[:1:1]
	} else {
		hdr.Set("X-Modgate-Cache", string(result))
	}
}
