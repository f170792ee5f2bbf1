"""The replica: the tables apps read, and the order-safe writes that keep them right."""
