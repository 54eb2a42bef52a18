"""The vCenter side: maintenance mode, vMotion evacuation and restore through pyVmomi."""
