package secret

// ParseKeyFile exposes the key file parser to the golden and fuzz tests.
var ParseKeyFile = parseKeyFile
