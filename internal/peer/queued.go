package peer

// Queued returns what the link holds for its peer and has not written yet:
// the record transitions waiting in the lazy queue (a replaced one is not
// counted) and the bytes of every queued frame. It is read for metrics.
func (l *Link) Queued() (records, bytes int) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	for _, e := range l.lazy.ents {
		if !e.dropped {
			records++
		}
	}
	return records, len(l.wbuf) + l.lazy.size()
}
