"""Source for the app's own stack (Drizzle, Prisma, SQLAlchemy) describing the replica, made
from the kinds registry: `clerk-replica schema`."""
