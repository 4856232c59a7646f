package recordstest

import (
	"context"
	"slices"
	"strings"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

// SaveNotice implements records.NoticeStore: the first save of an id wins,
// saving it again changes nothing. EINVALID without an id or patientRef.
func (m *MemStore) SaveNotice(_ context.Context, n *records.Notice) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	if n == nil || n.ID == "" || n.PatientRef == "" {
		return consent.Errorf(consent.EINVALID, "notice needs an id and a patientRef")
	}
	if _, ok := m.notices[n.ID]; !ok {
		m.notices[n.ID] = cloneNotice(n)
	}
	return nil
}

// Notices implements records.NoticeStore. EINVALID without a patient or
// with a negative limit.
func (m *MemStore) Notices(_ context.Context, f records.NoticeFilter) ([]*records.Notice, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	limit, err := f.PageLimit()
	if err != nil {
		return nil, err
	}
	out := []*records.Notice{}
	for _, n := range m.notices {
		if n.PatientRef == f.PatientRef && n.ID > f.After {
			out = append(out, cloneNotice(n))
		}
	}
	slices.SortFunc(out, func(a, b *records.Notice) int { return strings.Compare(a.ID, b.ID) })
	return out[:min(limit, len(out))], nil
}

// cloneNotice copies n and its byte slices.
func cloneNotice(n *records.Notice) *records.Notice {
	c := *n
	c.Text, c.WrappedDEK, c.Salt = slices.Clone(n.Text), slices.Clone(n.WrappedDEK), slices.Clone(n.Salt)
	return &c
}
