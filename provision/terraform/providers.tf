# Three explicit provider configurations, passed to every module: nothing uses an implied default.
# The sandbox points them at the local control plane ONLY through a generated override file
# (sandbox_override.tf, see gameday.provision.sandbox_override); this file stays real-AWS clean.

provider "aws" {
  alias  = "primary"
  region = var.primary_region

  default_tags {
    tags = local.tags
  }
}

provider "aws" {
  alias  = "recovery"
  region = var.recovery_region

  default_tags {
    tags = local.tags
  }
}

# Global Accelerator's API lives in us-west-2 only, whatever regions the endpoints are in.
provider "aws" {
  alias  = "global"
  region = var.global_region

  default_tags {
    tags = local.tags
  }
}
