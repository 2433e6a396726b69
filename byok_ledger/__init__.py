"""byok-ledger's command line: one `byok-ledger` entry point over the routing core, the
simulator, the Dagster pipeline and the finance report."""
