//! Aruba AOS-CX switches over REST.
