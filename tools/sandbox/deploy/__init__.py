"""Deploying: one core (`core`), the sandbox deployer (`local`, also the deploy hook) and the AWS one (`aws`)."""
