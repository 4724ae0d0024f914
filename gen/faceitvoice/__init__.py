"""Generated code of the faceit-voice protos (make protos); do not edit."""
