// Command fakedirector stands in for director in the package tests: a small
// static Go binary whose build information lists modules under the
// licenses the copyright file handles (MIT and Apache-2.0 with a NOTICE).
package main

import (
	"fmt"

	smithy "github.com/aws/smithy-go"
	"gopkg.in/yaml.v3"
)

func main() {
	out, _ := yaml.Marshal(map[string]string{"smithy": fmt.Sprint(smithy.FaultServer)})
	fmt.Print(string(out))
}
