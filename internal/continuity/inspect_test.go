package continuity

// Registry inspectors only tests use: the runtime never asks for the record
// count or an aggregate over every record (PendingHealth is the node's
// health), so they are not part of the package.

// Len is the number of stored records.
func (r *Registry) Len() int {
	r.lock()
	defer r.unlock()
	pending, kept := r.store.Len()
	return pending + kept
}

// Health aggregates replication health over every record: any unavailable,
// else any degraded, else any healthy, else local_only.
func (r *Registry) Health() Health {
	r.lock()
	defer r.unlock()
	var degraded, healthy, unavailable bool
	for rec := range r.store.List() {
		switch rec.Health {
		case HealthUnavailable:
			unavailable = true
		case HealthDegraded:
			degraded = true
		case HealthHealthy:
			healthy = true
		}
	}
	switch {
	case unavailable:
		return HealthUnavailable
	case degraded:
		return HealthDegraded
	case healthy:
		return HealthHealthy
	}
	return HealthLocalOnly
}

// memory returns the registry's store, which must be a MemoryStore.
func (r *Registry) memory() *MemoryStore { return r.store.(*MemoryStore) }

// lookup returns key's live retained record, decoded, or false.
func (t *retained) lookup(key string) (*Record, bool) {
	rec := new(Record)
	if !t.get(key, rec) {
		return nil, false
	}
	return rec, true
}
