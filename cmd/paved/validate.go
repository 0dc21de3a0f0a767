package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/pipeline"
)

func validateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate [FILE...]",
		Short: "Check pipeline files; print every problem as FILE:LINE:COL: message",
		Long: "validate checks each pipeline file (default .paved.yml) and prints every problem at\n" +
			"once as FILE:LINE:COL: message. Exit 0 when all are valid, 2 otherwise.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{".paved.yml"}
			}
			bad := false
			for _, file := range args {
				src, err := os.ReadFile(file)
				if err != nil {
					fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
					bad = true
					continue
				}
				p, err := pipeline.Compile(file, src, compileOptions())
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					bad = true
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%d stages)\n", file, len(p.Stages))
			}
			if bad {
				return &exitError{code: 2, err: errors.New("")}
			}
			return nil
		},
	}
}
