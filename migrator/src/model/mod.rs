//! The intermediate representation of a stack: typed, normalised (long syntax), with the source key
//! of every value. No YAML or Kubernetes types live here.
