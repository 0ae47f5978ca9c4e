"""Leaves a link named `leak` in the folder it is given (argument 2) to the path it is given (argument 1):
a file of the host, outside /opt/ml."""
import os
import sys

os.symlink(sys.argv[1], os.path.join(sys.argv[2], "leak"))
