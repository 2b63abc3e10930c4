# Same system in the US: terraform apply -var-file=examples/us.tfvars
primary_region    = "us-east-2"
recovery_region   = "us-west-1"
primary_vpc_cidr  = "10.30.0.0/16"
recovery_vpc_cidr = "10.40.0.0/16"
