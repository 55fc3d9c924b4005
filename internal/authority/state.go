package authority

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Roles a State may hold. They are the cluster_role strings of the operator
// surface.
const (
	RolePrimary = "primary"
	RoleStandby = "standby"
)

// FileName is the name of the state file inside a node's state directory.
const FileName = "authority.json"

// fileVersion is the format version written by Save. Load refuses any other.
const fileVersion = 1

// State is a node's persisted authority: its role ("primary" or "standby") and
// promotion epoch.
type State struct {
	Role  string
	Epoch uint64
}

// Valid reports whether s names a known role.
func (s State) Valid() bool { return s.Role == RolePrimary || s.Role == RoleStandby }

// fileState is the on-disk JSON form of State.
type fileState struct {
	Version int    `json:"version"`
	Role    string `json:"role"`
	Epoch   uint64 `json:"epoch"`
}

// Path returns the state file path inside dir.
func Path(dir string) string { return filepath.Join(dir, FileName) }

// Load reads the state saved at path. It returns false and no error when the
// file does not exist. A file that cannot be decoded, has an unknown version
// or names an unknown role is an error naming the path; it is never treated
// as absent, because forgetting a persisted epoch could let a fenced node
// come back as primary. Temporary files left by an interrupted Save are
// ignored.
func Load(path string) (State, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("load authority state %s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileState
	if err := dec.Decode(&f); err != nil {
		return State{}, false, fmt.Errorf("load authority state %s: corrupt file: %w", path, err)
	}
	if dec.More() {
		return State{}, false, fmt.Errorf("load authority state %s: corrupt file: trailing data", path)
	}
	if f.Version != fileVersion {
		return State{}, false, fmt.Errorf("load authority state %s: unsupported version %d (want %d)", path, f.Version, fileVersion)
	}
	s := State{Role: f.Role, Epoch: f.Epoch}
	if !s.Valid() {
		return State{}, false, fmt.Errorf("load authority state %s: corrupt file: unknown role %q", path, f.Role)
	}
	return s, true, nil
}

// Save writes s to path atomically: readers see either the previous file or
// the new one, never a mix, even if the process dies mid-write. The file is
// written to a temporary file in the same directory, synced, renamed over
// path, and the directory is synced. The directory is created (0700) if
// missing and the file is readable by its owner only (0600). Save may run
// concurrently with Load; concurrent Saves to one path leave one of them.
func Save(path string, s State) error {
	if !s.Valid() {
		return fmt.Errorf("save authority state %s: unknown role %q", path, s.Role)
	}
	data, err := json.Marshal(fileState{Version: fileVersion, Role: s.Role, Epoch: s.Epoch})
	if err != nil {
		return fmt.Errorf("save authority state %s: %w", path, err)
	}
	if err := writeAtomic(path, append(data, '\n')); err != nil {
		return fmt.Errorf("save authority state %s: %w", path, err)
	}
	return nil
}

// PeersFileName is the name of the known-peers file inside a state directory.
const PeersFileName = "peers.json"

// SavePeers records the peers a node has been connected to, so that after a
// restart it can dial them directly instead of waiting for discovery (which
// may not resolve every peer's address from every node). Written like Save.
func SavePeers(dir string, peers []string) error {
	data, err := json.Marshal(struct {
		Version int      `json:"version"`
		Peers   []string `json:"peers"`
	}{fileVersion, peers})
	if err != nil {
		return err
	}
	path := filepath.Join(dir, PeersFileName)
	if err := writeAtomic(path, append(data, '\n')); err != nil {
		return fmt.Errorf("save known peers %s: %w", path, err)
	}
	return nil
}

// LoadPeers returns the peers saved by SavePeers; none when the file is
// missing or unreadable (known peers are a hint, never a source of truth).
func LoadPeers(dir string) []string {
	data, err := os.ReadFile(filepath.Join(dir, PeersFileName))
	if err != nil {
		return nil
	}
	var f struct {
		Peers []string `json:"peers"`
	}
	if json.Unmarshal(data, &f) != nil {
		return nil
	}
	return f.Peers
}

// writeAtomic writes data to a temporary file in path's directory (created
// 0700 if missing), syncs it, renames it over path and syncs the directory.
// The file is readable by its owner only.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename inside dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// DefaultDir returns the state directory used when none is configured:
// <user cache dir>/mesh/<node name>. When the user has no cache directory
// (no HOME), it is <temp dir>/mesh-<uid>/<node name>; DefaultDir then creates
// mesh-<uid> private to the user (0700), and refuses one that exists but is
// not a directory, is owned by another user, or is writable by its group or
// others: in a shared temp directory another local user could have created
// it to read or plant the node's state. Characters of the node name that are
// unsafe or significant in paths (including @ : [ ]) become '_', so
// "standby@[::1]:4370" maps to "standby____1__4370". An empty node name maps
// to "standalone".
func DefaultDir(nodeName string) (string, error) {
	base, err := os.UserCacheDir()
	if err == nil && base != "" {
		return filepath.Join(base, "mesh", sanitize(nodeName)), nil
	}
	base = filepath.Join(os.TempDir(), fmt.Sprintf("mesh-%d", os.Getuid()))
	if err := PrivateDir(base); err != nil {
		return "", err
	}
	return filepath.Join(base, sanitize(nodeName)), nil
}

// PrivateDir makes sure dir is a directory of the current user that its group
// and others cannot write, creating it with mode 0700 if it does not exist.
// A symbolic link is refused, not followed.
func PrivateDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("state dir %s: %w", dir, err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("state dir %s: %w", dir, err)
	}
	switch {
	case !st.IsDir():
		return fmt.Errorf("state dir %s is not a directory (%s); remove it or set MESH_STATE_DIR", dir, st.Mode().Type())
	case st.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("state dir %s is writable by other users (mode %04o); remove it or set MESH_STATE_DIR", dir, st.Mode().Perm())
	}
	if uid, ok := ownerOf(st); ok && uid != os.Getuid() {
		return fmt.Errorf("state dir %s belongs to uid %d, not to this user (uid %d); remove it or set MESH_STATE_DIR", dir, uid, os.Getuid())
	}
	return nil
}

// sanitize maps a node name to one safe path element.
func sanitize(name string) string {
	if name == "" {
		return "standalone"
	}
	out := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
	if strings.Trim(out, ".") == "" {
		// "." and ".." would leave the mesh directory.
		out = strings.Repeat("_", len(out))
	}
	return out
}

// Merge combines the role and epoch a node was configured with and the state
// it persisted before a restart. The result never has a lower epoch than
// either input, so a node that was promoted or fenced can never come back
// below the epoch it reached:
//
//   - The higher epoch wins with its role. A persisted promotion (primary at a
//     higher epoch) or fencing (standby at a higher epoch) therefore overrides
//     a stale configuration; an operator who configures a higher epoch than
//     the persisted one is obeyed.
//   - At equal epochs the configured role wins: nothing happened at that epoch
//     that the configuration does not already know about, and an operator who
//     swaps or corrects roles must not be overruled by an old file. Two nodes
//     that both end up primary at one epoch settle when they meet (the runtime
//     demotes one deterministically).
//
// A zero persisted State means nothing was persisted and returns configured.
// Roles other than primary and standby are treated as standby.
func Merge(configured, persisted State) State {
	switch {
	case persisted == State{}:
		return State{Role: normalize(configured.Role), Epoch: configured.Epoch}
	case persisted.Epoch > configured.Epoch:
		return State{Role: normalize(persisted.Role), Epoch: persisted.Epoch}
	default:
		return State{Role: normalize(configured.Role), Epoch: configured.Epoch}
	}
}

// normalize maps anything but primary to standby, the safe role.
func normalize(role string) string {
	if role == RolePrimary {
		return RolePrimary
	}
	return RoleStandby
}
