package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// parseInterspersed parses args with fs, allowing flags before, between and
// after the positional arguments ("modgate explain MOD --config F"), and
// returns the positional arguments. On a parse error it returns the exit
// status to use: 0 for -h (the usage was printed), 2 otherwise (fs
// printed the problem).
func parseInterspersed(fs *flag.FlagSet, args []string) (positional []string, status int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0, false
			}
			return nil, 2, false
		}
		if fs.NArg() == 0 {
			return positional, 0, true
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// newFlagSet returns the flag set of subcommand prog, which reports errors
// to stderr and whose -h prints usage followed by the flags.
func newFlagSet(prog, usage string, stderr io.Writer) *flag.FlagSet {
	fset := flag.NewFlagSet(prog, flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), usage)
		fset.PrintDefaults()
	}
	return fset
}
