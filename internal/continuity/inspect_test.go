package continuity

// Registry inspectors only tests use: the runtime never asks for the record
// count or an aggregate over every record (PendingHealth is the node's
// health), so they are not part of the package.

// Len is the number of stored records.
func (r *Registry) Len() int {
	r.lock()
	defer r.unlock()
	return len(r.records) + r.kept.live
}

// Health aggregates replication health over every record: any unavailable,
// else any degraded, else any healthy, else local_only.
func (r *Registry) Health() Health {
	r.lock()
	defer r.unlock()
	var degraded, healthy, unavailable bool
	note := func(rec *Record) {
		switch rec.Health {
		case HealthUnavailable:
			unavailable = true
		case HealthDegraded:
			degraded = true
		case HealthHealthy:
			healthy = true
		}
	}
	for _, rec := range r.records {
		note(rec)
	}
	r.kept.each(note)
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
