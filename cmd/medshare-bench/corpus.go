package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// categoryOf maps the Synthea resource types the harness uses to the record
// categories they are stored under. Patient resources are left out: they are
// demographics, not clinical records.
var categoryOf = map[string]string{
	"Condition":          "conditions",
	"Procedure":          "procedures",
	"Immunization":       "immunizations",
	"MedicationRequest":  "medications",
	"AllergyIntolerance": "allergies",
}

// categories is every category the corpus produces, sorted.
func categories() []string {
	out := make([]string, 0, len(categoryOf))
	for _, c := range categoryOf {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// resource is one Synthea resource as read from its NDJSON line.
type resource struct {
	raw []byte // the line, verbatim
	id  []byte // its "id" value, replaced per record so each record is distinct
}

// corpus turns the Synthea sample into any number of distinct ~4 KiB FHIR
// R4 Bundles. Files are read at run time, never copied into the repository.
type corpus struct {
	types []string              // resource types in category order
	byTyp map[string][]resource // type → resources
}

// loadCorpus reads the NDJSON files of dir (testdata/synthea).
func loadCorpus(dir string) (*corpus, error) {
	c := &corpus{byTyp: map[string][]resource{}}
	for typ := range categoryOf {
		f, err := os.Open(filepath.Join(dir, typ+".ndjson"))
		if err != nil {
			return nil, fmt.Errorf("synthea sample: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := bytes.Clone(sc.Bytes())
			var head struct{ ID string }
			if err := json.Unmarshal(line, &head); err != nil || head.ID == "" {
				f.Close()
				return nil, fmt.Errorf("synthea %s: a line without an id", typ)
			}
			c.byTyp[typ] = append(c.byTyp[typ], resource{raw: line, id: []byte(head.ID)})
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("synthea %s: %w", typ, err)
		}
		if len(c.byTyp[typ]) == 0 {
			return nil, fmt.Errorf("synthea %s: no resources", typ)
		}
		c.types = append(c.types, typ)
	}
	slices.SortFunc(c.types, func(a, b string) int { return cmpString(categoryOf[a], categoryOf[b]) })
	return c, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// recordSize is the target size of a generated record.
const recordSize = 4096

// record returns record i: a Bundle of resources of one type (chosen by
// i), filled with whole resources up to recordSize bytes and then padded to
// exactly recordSize with a Bundle.identifier, with every resource id and
// the bundle id made unique to i. The same i always yields the same bytes.
func (c *corpus) record(i int) (category string, content []byte) {
	typ := c.types[i%len(c.types)]
	rs := c.byTyp[typ]
	head := fmt.Sprintf(`{"resourceType":"Bundle","id":"bench-%d","type":"collection",`, i)
	const padOpen, padClose = `"identifier":{"system":"urn:medshare:bench","value":"`, `"},`
	var entries bytes.Buffer
	for k := 0; ; k++ {
		r := rs[(i/len(c.types)+k)%len(rs)]
		id := fmt.Appendf(nil, "%s-%d-%d", r.id, i, k)
		entry := fmt.Appendf(nil, `{"fullUrl":"urn:uuid:%s","resource":%s}`, id, bytes.Replace(r.raw, r.id, id, 1))
		// Stop before overshooting, but always hold at least one entry.
		room := recordSize - len(head) - len(padOpen) - len(padClose) - len(`"entry":[]}`) - entries.Len() - 1
		if k > 0 && len(entry) > room {
			break
		}
		if k > 0 {
			entries.WriteByte(',')
		}
		entries.Write(entry)
	}
	pad := max(0, recordSize-len(head)-len(padOpen)-len(padClose)-len(`"entry":[]}`)-entries.Len())
	var b bytes.Buffer
	b.WriteString(head)
	b.WriteString(padOpen)
	b.Write(bytes.Repeat([]byte{'x'}, pad))
	b.WriteString(padClose)
	b.WriteString(`"entry":[`)
	b.Write(entries.Bytes())
	b.WriteString("]}")
	return categoryOf[typ], b.Bytes()
}

// meanSize is the mean size of the first n records.
func (c *corpus) meanSize(n int) int {
	total := 0
	for i := range n {
		_, b := c.record(i)
		total += len(b)
	}
	return total / n
}
