// Command trivy-db-fixture writes a tiny, offline Trivy vulnerability database for tests:
// a BoltDB `trivy.db` in the layout Trivy reads (schema 2), its `metadata.json`, and
// `db.tar.gz` holding both, which is the single layer of the OCI artifact Trivy downloads
// with `--db-repository`.
//
// The advisories come from a JSON file (advisories.json next to this file by default) so
// the tests can read the same file to know what a scan must find.
//
//	go run . -advisories advisories.json -out /tmp/db
package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/aquasecurity/trivy-db/pkg/types"
)

// Source is where advisories of one bucket come from (Trivy shows it as DataSource).
type Source struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	URL  string `json:"url"`
}

// Entry is one advisory of the fixture: a vulnerability of one package in one bucket.
type Entry struct {
	ID string `json:"id"`
	// Bucket is the advisory bucket: "debian 13" for Debian 13 (keyed by source package
	// name), "pip::GitHub Security Advisory pip", "npm::GitHub Security Advisory npm", ...
	Bucket  string `json:"bucket"`
	Source  Source `json:"source"`
	Package string `json:"package"`
	// For OS packages: the first fixed version.
	FixedVersion string `json:"fixedVersion,omitempty"`
	// For language packages: version ranges, e.g. ">=3.0.0, <3.3.21" and "3.3.21".
	VulnerableVersions []string `json:"vulnerableVersions,omitempty"`
	PatchedVersions    []string `json:"patchedVersions,omitempty"`
	Severity           string   `json:"severity"`
	Title              string   `json:"title"`
	Description        string   `json:"description,omitempty"`
}

// File is the advisories file.
type File struct {
	Advisories []Entry `json:"advisories"`
}

func main() {
	advisories := flag.String("advisories", "advisories.json", "advisories JSON file")
	out := flag.String("out", "", "output directory (created): trivy.db, metadata.json, db.tar.gz")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "trivy-db-fixture: -out is required")
		os.Exit(2)
	}
	if err := run(*advisories, *out); err != nil {
		fmt.Fprintf(os.Stderr, "trivy-db-fixture: %v\n", err)
		os.Exit(1)
	}
}

func run(advisoriesPath, out string) error {
	raw, err := os.ReadFile(advisoriesPath)
	if err != nil {
		return err
	}
	var file File
	if err := json.Unmarshal(raw, &file); err != nil {
		return fmt.Errorf("%s: %w", advisoriesPath, err)
	}
	if len(file.Advisories) == 0 {
		return fmt.Errorf("%s: no advisories", advisoriesPath)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	_ = os.Remove(db.Path(out))
	if err := db.Init(out); err != nil {
		return err
	}
	dbc := db.Config{}
	err = dbc.BatchUpdate(func(tx *bolt.Tx) error {
		for _, e := range file.Advisories {
			if err := put(dbc, tx, e); err != nil {
				return fmt.Errorf("%s %s: %w", e.ID, e.Package, err)
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}

	// Schema 2 is what this trivy-db version (and the Trivy that requires it) reads.
	// NextUpdate far in the future: Trivy never considers the fixture stale.
	meta := metadata.Metadata{
		Version:    db.SchemaVersion,
		NextUpdate: time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC),
		UpdatedAt:  time.Now().UTC().Truncate(time.Second),
	}
	if err := metadata.NewClient(out).Update(meta); err != nil {
		return err
	}
	return writeArchive(filepath.Join(out, "db.tar.gz"), out, []string{"trivy.db", "metadata.json"})
}

func put(dbc db.Config, tx *bolt.Tx, e Entry) error {
	if e.ID == "" || e.Bucket == "" || e.Package == "" || e.Source.ID == "" {
		return fmt.Errorf("id, bucket, package and source.id are required")
	}
	sev, err := types.NewSeverity(e.Severity)
	if err != nil {
		return err
	}
	adv := types.Advisory{
		FixedVersion:       e.FixedVersion,
		VulnerableVersions: e.VulnerableVersions,
		PatchedVersions:    e.PatchedVersions,
	}
	// Advisories: bucket -> package -> vulnerability id.
	if err := dbc.PutAdvisory(tx, []string{e.Bucket, e.Package}, e.ID, adv); err != nil {
		return err
	}
	if err := dbc.PutDataSource(tx, e.Bucket, types.DataSource{
		ID:   types.SourceID(e.Source.ID),
		Name: e.Source.Name,
		URL:  e.Source.URL,
	}); err != nil {
		return err
	}
	// Details: severity per data source (what Trivy reads first) and the plain one.
	return dbc.PutVulnerability(tx, e.ID, types.Vulnerability{
		Title:          e.Title,
		Description:    e.Description,
		Severity:       sev.String(),
		VendorSeverity: types.VendorSeverity{types.SourceID(e.Source.ID): sev},
	})
}

func writeArchive(path, dir string, names []string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, name := range names {
		src, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		st, err := src.Stat()
		if err != nil {
			src.Close()
			return err
		}
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			src.Close()
			return err
		}
		_, err = io.Copy(tw, src)
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
