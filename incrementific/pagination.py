"""The API's pages: DRF's page numbers, held to what the schema says of `page`."""

from rest_framework import pagination
from rest_framework.exceptions import ValidationError


class PageNumberPagination(pagination.PageNumberPagination):
    """DRF's, but `page` given twice is a 400 (DRF would read the last one; the schema declares
    one integer), `page` is a number or a 404 as any page that is not there (DRF reads an empty
    one as the first and `last` as the last), and the schema says the first page is 1."""

    def paginate_queryset(self, queryset, request, view=None):
        if len(request.query_params.getlist(self.page_query_param)) > 1:
            raise ValidationError({self.page_query_param: ["Give one page number."]})
        return super().paginate_queryset(queryset, request, view)

    def get_page_number(self, request, paginator):
        return request.query_params.get(self.page_query_param, 1)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters
