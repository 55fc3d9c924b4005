package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"meshgo.dev/mesh"
	meshcookie "meshgo.dev/mesh/internal/cookie"
	"meshgo.dev/mesh/internal/operator"
	"meshgo.dev/mesh/internal/wire"
)

// defaultClusterTimeout bounds one operator query when --timeout-ms is not given.
const defaultClusterTimeout = 5000 * time.Millisecond

// defaultSwitchoverTimeout bounds a switchover: the node gives up on its own
// after 10 s, and the answer must still reach meshc.
const defaultSwitchoverTimeout = 15000 * time.Millisecond

// clusterVerb is one `meshc cluster` subcommand.
type clusterVerb struct {
	name     string
	usage    string // argument synopsis after "meshc cluster <name> "
	summary  string
	maxArgs  int      // positional arguments, the node name included
	hasLimit bool     // accepts --limit
	hasTo    bool     // accepts --to (switchover)
	examples []string // command lines shown under Examples: in --help
}

var clusterVerbs = []clusterVerb{
	{
		name:    "status",
		usage:   "<node> [<node2>] [--json] [--cookie-file F | --cookie C] [--timeout-ms MS]",
		summary: "show a node's membership, authority, readiness and view of its peers; with two nodes, check that the pair agrees",
		maxArgs: 2,
		examples: []string{
			"meshc cluster status primary@127.0.0.1:4370 --json",
			"meshc cluster status primary@127.0.0.1:4370 standby@[::1]:4370 --cookie-file ./cookie",
		},
	},
	{
		name:     "continuity",
		usage:    "<node> [request-key] [--limit N] [--json] [--cookie-file F | --cookie C] [--timeout-ms MS]",
		summary:  "list a node's continuity records, or show the one for request-key",
		maxArgs:  2,
		hasLimit: true,
		examples: []string{
			"meshc cluster continuity primary@127.0.0.1:4370 --limit 20",
			"meshc cluster continuity primary@127.0.0.1:4370 startup::work.Add --json",
		},
	},
	{
		name:     "diagnostics",
		usage:    "<node> [--limit N] [--json] [--cookie-file F | --cookie C] [--timeout-ms MS]",
		summary:  "show a node's recent continuity transitions, oldest first",
		maxArgs:  1,
		hasLimit: true,
		examples: []string{
			"meshc cluster diagnostics standby@[::1]:4370 --limit 10 --json",
		},
	},
	{
		name:    "switchover",
		usage:   "<node> [--to <node>] [--json] [--cookie-file F | --cookie C] [--timeout-ms MS]",
		summary: "hand the primary role of <node> to its connected standby, losing and repeating no work",
		maxArgs: 1,
		hasTo:   true,
		examples: []string{
			"meshc cluster switchover primary@127.0.0.1:4370",
			"meshc cluster switchover primary@127.0.0.1:4370 --to standby@[::1]:4370 --json",
		},
	},
}

// clusterCommands is the cluster part of the command table, for completion:
// every verb with its real flag set, and cookie.
func clusterCommands() []command {
	var out []command
	for _, v := range clusterVerbs {
		out = append(out, command{name: v.name, summary: v.summary, flags: func() *flag.FlagSet {
			var o clusterOptions
			return v.flagSet(&o)
		}})
	}
	return append(out, command{name: "cookie", summary: "print a fresh random cluster cookie"})
}

// runCluster implements `meshc cluster status|continuity|diagnostics`: one
// authenticated query to one node, printed as aligned text or as the JSON
// document of DESIGN §6.
func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runClusterEnv(ctx, args, stdout, stderr, os.LookupEnv)
}

// runClusterEnv is runCluster with the environment passed in, for tests.
func runClusterEnv(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if len(args) == 0 {
		return usageError(errors.New("meshc cluster: a subcommand is required (status, continuity, diagnostics, switchover or cookie); run 'meshc cluster --help'"))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		clusterUsage(stdout)
		return flag.ErrHelp
	case "cookie":
		return runClusterCookie(args[1:], stdout)
	}
	for _, v := range clusterVerbs {
		if v.name == args[0] {
			return v.run(ctx, args[1:], stdout, stderr, lookupEnv)
		}
	}
	return usageError(fmt.Errorf("meshc cluster: unknown subcommand %q (want status, continuity, diagnostics, switchover or cookie)", args[0]))
}

// runClusterCookie implements `meshc cluster cookie`: it prints a fresh
// random cluster cookie (32 bytes from crypto/rand, base64url) and nothing
// else, so `meshc cluster cookie > cookie` makes a cookie file.
func runClusterCookie(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			fmt.Fprintln(stdout, "Usage: meshc cluster cookie")
			fmt.Fprintln(stdout)
			fmt.Fprintln(stdout, "Print a fresh random cluster cookie (256 bits from the system's secure")
			fmt.Fprintln(stdout, "random source, base64url) for MESH_CLUSTER_COOKIE or a cookie file.")
			fmt.Fprintln(stdout)
			fmt.Fprintln(stdout, "Example:")
			fmt.Fprintln(stdout, "  (umask 077; meshc cluster cookie > cookie)")
			return flag.ErrHelp
		}
		return usageError(fmt.Errorf("meshc cluster cookie: unexpected argument %q; usage: meshc cluster cookie", args[0]))
	}
	_, err := fmt.Fprintln(stdout, meshcookie.New())
	return err
}

func clusterUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: meshc cluster <subcommand> <node> [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Query one running node over the authenticated cluster transport. meshc")
	fmt.Fprintln(w, "connects as a short-lived operator client and never joins membership.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Subcommands:")
	for _, v := range clusterVerbs {
		fmt.Fprintf(w, "  %-12s %s\n", v.name, v.summary)
	}
	fmt.Fprintf(w, "  %-12s %s\n", "cookie", "print a fresh random cluster cookie")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'meshc cluster <subcommand> --help' for its flags.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Examples:")
	fmt.Fprintln(w, "  set -a; . ./.env; set +a      # the cookie, from the project's .env")
	fmt.Fprintln(w, "  meshc cluster status primary@127.0.0.1:4370 standby@[::1]:4370")
	fmt.Fprintln(w)
	writeExitCodes(w)
}

// limitFlag is an optional --limit: a u32 that remembers whether it was given.
type limitFlag struct {
	n   uint32
	set bool
}

func (l *limitFlag) String() string {
	if l == nil || !l.set {
		return ""
	}
	return strconv.FormatUint(uint64(l.n), 10)
}

func (l *limitFlag) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return errors.New("must be a non-negative integer below 2^32")
	}
	l.n, l.set = uint32(n), true
	return nil
}

// clusterOptions are the parsed flags and arguments of one verb.
type clusterOptions struct {
	node       string
	requestKey *string // continuity only; nil when not given
	json       bool
	cookie     string
	cookieSet  bool
	cookieFile string
	timeoutMS  int
	limit      limitFlag
	to         string
}

func (v clusterVerb) flagSet(o *clusterOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("meshc cluster "+v.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; help is printed on request
	fs.Usage = func() {}
	fs.BoolVar(&o.json, "json", false, "print the JSON document instead of text")
	fs.StringVar(&o.cookie, "cookie", "", "cluster cookie `C` (other users can see it on the command line; prefer --cookie-file); defaults to $MESH_CLUSTER_COOKIE")
	fs.StringVar(&o.cookieFile, "cookie-file", "", "read the cluster cookie from `F`, a file only its owner can read; defaults to $MESH_CLUSTER_COOKIE_FILE")
	timeout := defaultClusterTimeout
	if v.hasTo {
		timeout = defaultSwitchoverTimeout
	}
	fs.IntVar(&o.timeoutMS, "timeout-ms", int(timeout/time.Millisecond), "give up after `MS` milliseconds")
	if v.hasTo {
		fs.StringVar(&o.to, "to", "", "the standby `node` to hand the role to (name@host:port); by default the one connected standby")
	}
	if v.hasLimit {
		help := "show at most `N` entries, the most recent ones"
		if v.name == "continuity" {
			help = "list at most `N` records, the first ones in request-key order"
		}
		fs.Var(&o.limit, "limit", help)
	}
	return fs
}

func (v clusterVerb) help(w io.Writer) {
	var o clusterOptions
	fs := v.flagSet(&o)
	fmt.Fprintf(w, "Usage: meshc cluster %s %s\n\n", v.name, v.usage)
	fmt.Fprintf(w, "%s.\n", strings.ToUpper(v.summary[:1])+v.summary[1:])
	fmt.Fprintln(w, "<node> is the node's name, name@host:port (name@[v6]:port for IPv6).")
	if v.name == "status" {
		fmt.Fprintln(w, "With two nodes, both are queried at once and the pair is checked: exactly one")
		fmt.Fprintln(w, "primary, the same promotion epoch, each connected to the other, both healthy")
		fmt.Fprintln(w, "and ready. Both views are printed; a pair that disagrees exits 6.")
	}
	if v.name == "switchover" {
		fmt.Fprintln(w, "<node> must be the primary. It holds new submissions for a moment, waits for")
		fmt.Fprintln(w, "its in-flight ones, checks that the standby holds every mirrored record, then")
		fmt.Fprintln(w, "hands over the promotion epoch (epoch + 1) or, with MESH_ARBITER=postgres://...,")
		fmt.Fprintln(w, "the lease. Requests keep being served throughout. It prints each step; a")
		fmt.Fprintln(w, "refusal (not the primary, standby not connected or not caught up) changes nothing.")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Examples:")
	for _, e := range v.examples {
		fmt.Fprintf(w, "  %s\n", e)
	}
	fmt.Fprintln(w)
	writeExitCodes(w)
}

// parse reads flags and positional arguments in any order; "--" ends flags.
func (v clusterVerb) parse(args []string) (clusterOptions, error) {
	var o clusterOptions
	fs := v.flagSet(&o)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return o, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "cookie" {
			o.cookieSet = true
		}
	})
	switch {
	case len(positional) == 0:
		return o, fmt.Errorf("meshc cluster %s: missing <node>; usage: meshc cluster %s %s", v.name, v.name, v.usage)
	case len(positional) > v.maxArgs:
		return o, fmt.Errorf("meshc cluster %s: unexpected argument %q; usage: meshc cluster %s %s", v.name, positional[v.maxArgs], v.name, v.usage)
	}
	o.node = positional[0]
	if len(positional) > 1 {
		o.requestKey = &positional[1]
	}
	return o, nil
}

func (v clusterVerb) run(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	o, err := v.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		v.help(stdout)
		return flag.ErrHelp
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "meshc cluster") {
			return usageError(err)
		}
		return usageError(fmt.Errorf("meshc cluster %s: %w", v.name, err))
	}
	if o.requestKey != nil && o.limit.set {
		return usageError(errors.New("meshc cluster continuity does not accept --limit when request_key is provided"))
	}
	if o.timeoutMS <= 0 {
		return usageError(fmt.Errorf("meshc cluster: --timeout-ms must be a positive integer, got %d", o.timeoutMS))
	}
	if v.name == "status" && o.requestKey != nil {
		return runPair(ctx, o, *o.requestKey, stdout, stderr, lookupEnv)
	}

	q := wire.OperatorQuery{HasLimit: o.limit.set, Limit: o.limit.n}
	switch {
	case v.name == "status":
		q.Kind = uint8(operator.KindStatus)
	case v.name == "diagnostics":
		q.Kind = uint8(operator.KindDiagnostics)
	case v.name == "switchover":
		q.Kind, q.RequestKey = uint8(operator.KindSwitchover), o.to
	case o.requestKey != nil:
		q.Kind, q.RequestKey = uint8(operator.KindContinuityLookup), *o.requestKey
	default:
		q.Kind = uint8(operator.KindContinuityList)
	}
	kind := operator.Kind(q.Kind)
	if err := operator.Validate(q); err != nil {
		return err
	}
	target, err := mesh.ParseTarget(o.node)
	if err != nil {
		return &operator.QueryError{Kind: kind, Target: o.node, Failure: operator.FailureInvalid, Err: err}
	}
	if o.to != "" {
		if _, err := mesh.ParseTarget(o.to); err != nil {
			return &operator.QueryError{Kind: kind, Target: o.to, Failure: operator.FailureInvalid, Err: fmt.Errorf("--to: %w", err)}
		}
	}
	cookie, err := o.cookieFor(stderr, lookupEnv)
	if err != nil {
		return err
	}
	report, err := queryReport(ctx, target, cookie, q, o.timeout(), o.node)
	if err != nil {
		return err
	}
	if o.json {
		return operator.WriteJSON(stdout, report)
	}
	return report.WriteText(stdout)
}

// cookieFor returns the cookie for o (a usage error when there is none that
// can be used) and warns on stderr when it came from --cookie on argv.
func (o clusterOptions) cookieFor(stderr io.Writer, lookupEnv func(string) (string, bool)) ([]byte, error) {
	cookie, err := clusterCookie(o, lookupEnv)
	if err != nil {
		return nil, usageError(err)
	}
	if o.cookieSet {
		fmt.Fprintln(stderr, "warning: --cookie puts the cluster cookie on the command line, where other users of this host can see it; use --cookie-file or MESH_CLUSTER_COOKIE_FILE instead")
	}
	return cookie, nil
}

func (o clusterOptions) timeout() time.Duration { return time.Duration(o.timeoutMS) * time.Millisecond }

// queryReport sends q to target and returns the decoded report with its
// target set to typed, the node name as the operator typed it.
func queryReport(ctx context.Context, target operator.Target, cookie []byte, q wire.OperatorQuery, timeout time.Duration, typed string) (operator.Report, error) {
	kind := operator.Kind(q.Kind)
	body, err := operator.Query(ctx, target, cookie, q, timeout)
	if err != nil {
		return nil, err
	}
	report, err := operator.DecodeReply(kind, body)
	if err != nil {
		return nil, &operator.QueryError{Kind: kind, Target: target.String(), Failure: operator.FailureDecode, Err: err}
	}
	report.SetTarget(typed)
	return report, nil
}

// clusterCookie returns the cookie from --cookie or --cookie-file, else from
// MESH_CLUSTER_COOKIE or MESH_CLUSTER_COOKIE_FILE. Two sources at one level
// are an error; values are trimmed, as the node trims its own, and none may
// be blank. A cookie file must be private to its owner. No message ever
// contains the cookie.
func clusterCookie(o clusterOptions, lookupEnv func(string) (string, bool)) ([]byte, error) {
	fileSet := o.cookieFile != ""
	switch {
	case o.cookieSet && fileSet:
		return nil, errors.New("meshc cluster: use only one of --cookie and --cookie-file")
	case o.cookieSet:
		c := strings.TrimSpace(o.cookie)
		if c == "" {
			return nil, errors.New("meshc cluster: --cookie must not be blank")
		}
		return []byte(c), nil
	case fileSet:
		c, err := meshcookie.ReadFile("--cookie-file", o.cookieFile)
		if err != nil {
			return nil, fmt.Errorf("meshc cluster: %w", err)
		}
		return []byte(c), nil
	}
	env, envOK := lookupEnv("MESH_CLUSTER_COOKIE")
	path, pathOK := lookupEnv("MESH_CLUSTER_COOKIE_FILE")
	path = strings.TrimSpace(path)
	switch {
	case envOK && path != "":
		return nil, errors.New("meshc cluster: set only one of MESH_CLUSTER_COOKIE and MESH_CLUSTER_COOKIE_FILE")
	case path != "":
		c, err := meshcookie.ReadFile("MESH_CLUSTER_COOKIE_FILE", path)
		if err != nil {
			return nil, fmt.Errorf("meshc cluster: %w", err)
		}
		return []byte(c), nil
	case pathOK && !envOK:
		return nil, errors.New("meshc cluster: MESH_CLUSTER_COOKIE_FILE must not be blank")
	case !envOK:
		return nil, errors.New("meshc cluster: MESH_CLUSTER_COOKIE is required unless --cookie or --cookie-file is provided (MESH_CLUSTER_COOKIE_FILE also works)")
	}
	c := strings.TrimSpace(env)
	if c == "" {
		return nil, errors.New("meshc cluster: MESH_CLUSTER_COOKIE must not be blank")
	}
	return []byte(c), nil
}
