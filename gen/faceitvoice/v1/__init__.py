"""Generated code of faceitvoice.v1 (make protos); do not edit."""
